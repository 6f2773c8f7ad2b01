"""By-eye annotations of the two test videos in ../shared/datasets/videos (looked at once, frame by
frame around every cut, with PyAV; frame numbers count decoded frames from 0).

short_hamilton_clip.mp4 (275 frames, 29.97 fps), by shot:
  0-19    wide shot of the stage: Lin-Manuel Miranda singing (face ~45 px) and, far left at the
          piano, Alex Lacamoire (face ~20 px);
  20-81   close-up of Alex Lacamoire in profile (curly hair), audience blurred behind;
  82-210  Lin-Manuel Miranda, frontal, singing into the microphone;
  211-274 the audience: Barack Obama (three-quarter view, centre), Michelle Obama (profile, right)
          and other people not in any labelled set (left).

crowd_walk.mp4 (105 frames, 25 fps): the distinct people whose face is turned towards the camera,
at least ~30 px wide, in some frame: the woman with the scarf (front left, frames 0-40), the
white-haired woman in the black and red coat, the red-haired young man, the boy in the blue hoodie,
the man in the black coat (right edge, in profile, frames 0-10), the bald man with glasses in the
beige coat (background, frames 0-20), the woman with curly hair in the red coat (background), the
grey-haired man with glasses in the black jacket (background), the man in the black puffer jacket
(from frame ~50) and the bald man at the back right (last frames): 10 people.
"""

#: Frame ranges (inclusive) where each person is visible.
HAMILTON = {
    "Lin-Manuel Miranda": [(0, 19), (82, 210)],
    "Alex Lacamoire": [(0, 81)],
    "Barack Obama": [(211, 274)],
}
#: The photo of face_recognition_examples each is enrolled from (one each).
HAMILTON_PHOTOS = {
    "Lin-Manuel Miranda": "lin_manuel_miranda/lin-manuel-miranda.png",
    "Alex Lacamoire": "alex_lacamoire/alex-lacamoire.png",
    "Barack Obama": "obama/obama.jpg",
}
CROWD_PEOPLE = 10
